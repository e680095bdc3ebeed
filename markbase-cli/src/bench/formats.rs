//! The video formats `markbase bench --format` streams: each a frame size and a frame rate.
//!
//! ProRes rates are Apple's published target data rates at 24 fps (Apple ProRes White Paper,
//! "Target data rates" table, <https://www.apple.com/final-cut-pro/docs/Apple_ProRes_White_Paper.pdf>):
//! 4096x2160 ProRes 422 HQ 707 Mb/s, ProRes 4444 1061 Mb/s. The white paper's rates grow with
//! the pixel count, so 8192x4320 (four times the pixels) is taken as four times the 4K rate.
//! A frame is rate / 8 / fps bytes, rounded up.
//!
//! Uncompressed 10-bit is v210 4:2:2 (Apple Technical Note TN2162, "Uncompressed Y'CbCr Video
//! in QuickTime Files", <https://developer.apple.com/library/archive/technotes/tn2162/>):
//! six pixels in four 32-bit words, each row padded to a multiple of 48 pixels, so a row is
//! ceil(width / 48) * 128 bytes.

/// A preset of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// 4096x2160 Apple ProRes 422 HQ, 24 fps (707 Mb/s).
    #[value(name = "prores-422-hq-4k")]
    ProRes422Hq4k,
    /// 4096x2160 Apple ProRes 4444, 24 fps (1061 Mb/s).
    #[value(name = "prores-4444-4k")]
    ProRes4444_4k,
    /// 8192x4320 Apple ProRes 422 HQ, 24 fps (4 x 707 Mb/s).
    #[value(name = "prores-422-hq-8k")]
    ProRes422Hq8k,
    /// 4096x2160 uncompressed 10-bit 4:2:2 (v210), 24 fps.
    #[value(name = "uncompressed-10bit-4k")]
    Uncompressed10Bit4k,
    /// 8192x4320 uncompressed 10-bit 4:2:2 (v210), 24 fps.
    #[value(name = "uncompressed-10bit-8k")]
    Uncompressed10Bit8k,
}

/// Bytes of one frame at `megabits_per_s` and `fps`, rounded up.
const fn compressed_frame(megabits_per_s: u64, fps: u64) -> u64 {
    (megabits_per_s * 1_000_000).div_ceil(8 * fps)
}

/// Bytes of one v210 frame of `width` x `height` pixels.
const fn v210_frame(width: u64, height: u64) -> u64 {
    width.div_ceil(48) * 128 * height
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProRes422Hq4k => "prores-422-hq-4k",
            Self::ProRes4444_4k => "prores-4444-4k",
            Self::ProRes422Hq8k => "prores-422-hq-8k",
            Self::Uncompressed10Bit4k => "uncompressed-10bit-4k",
            Self::Uncompressed10Bit8k => "uncompressed-10bit-8k",
        }
    }

    /// What the format is, for people.
    pub fn description(self) -> &'static str {
        match self {
            Self::ProRes422Hq4k => "4096x2160 ProRes 422 HQ 24p",
            Self::ProRes4444_4k => "4096x2160 ProRes 4444 24p",
            Self::ProRes422Hq8k => "8192x4320 ProRes 422 HQ 24p",
            Self::Uncompressed10Bit4k => "4096x2160 10-bit 4:2:2 v210 24p",
            Self::Uncompressed10Bit8k => "8192x4320 10-bit 4:2:2 v210 24p",
        }
    }

    /// Bytes of one frame.
    pub fn frame_bytes(self) -> u64 {
        match self {
            Self::ProRes422Hq4k => compressed_frame(707, 24),
            Self::ProRes4444_4k => compressed_frame(1061, 24),
            Self::ProRes422Hq8k => compressed_frame(4 * 707, 24),
            Self::Uncompressed10Bit4k => v210_frame(4096, 2160),
            Self::Uncompressed10Bit8k => v210_frame(8192, 4320),
        }
    }

    /// Frames per second.
    pub fn fps(self) -> f64 {
        24.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_follow_the_published_rates() {
        assert_eq!(Format::ProRes422Hq4k.frame_bytes(), 3_682_292);
        assert_eq!(Format::ProRes4444_4k.frame_bytes(), 5_526_042);
        // 4096 px is 85.3 groups of 48: 86 * 128 = 11,008 bytes a row.
        assert_eq!(Format::Uncompressed10Bit4k.frame_bytes(), 11_008 * 2160);
        assert_eq!(Format::Uncompressed10Bit8k.frame_bytes(), 21_888 * 4320);
        for format in [
            Format::ProRes422Hq4k,
            Format::ProRes4444_4k,
            Format::ProRes422Hq8k,
            Format::Uncompressed10Bit4k,
            Format::Uncompressed10Bit8k,
        ] {
            let value = <Format as clap::ValueEnum>::to_possible_value(&format).unwrap();
            assert_eq!(value.get_name(), format.name());
        }
    }
}
