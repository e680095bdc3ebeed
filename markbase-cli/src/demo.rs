//! `markbase demo`: a generated media library, its catalog, and a tour of both.
//!
//! The library has nested folders, unicode names, files from a few bytes to a
//! few hundred MB with media-like headers, and one clip whose first alias is
//! stale: it was copied to a backup drive (its second alias) and then deleted
//! from the first.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use markbase_dav::{Access, Background};
use markbase_vfs::{NodeId, Vfs, VfsConfig, VfsError};

use crate::browse;
use crate::import::import_with_progress;

/// Marks a directory as made by `markbase demo`, so that a rerun may use it.
const MARKER: &str = ".markbase-demo";

/// Cap on every file's size with `--quick`.
const QUICK_MAX: u64 = 4 << 20;

/// The clip copied to the backup drive and deleted from the first one.
const MOVED_CLIP: &str = "Projects/Überblick 2026/A001_C003_0412XY.mov";

const MIB: u64 = 1 << 20;

/// What a generated file looks like inside.
#[derive(Clone, Copy)]
enum Media {
    Text(&'static str),
    QuickTime,
    Mp4,
    Wav,
    Jpeg,
    Dpx,
}

/// The demo library: path below the media folder, size, and content.
const LIBRARY: &[(&str, u64, Media)] = &[
    (
        "README.txt",
        0,
        Media::Text("MarkBase demo library: generated media, served from a catalog.\n"),
    ),
    (
        "Projects/Überblick 2026/A001_C002_0412XY.mov",
        320 * MIB,
        Media::QuickTime,
    ),
    (MOVED_CLIP, 48 * MIB, Media::QuickTime),
    (
        "Projects/Überblick 2026/Proxies/A001_C002_0412XY_proxy.mp4",
        12 * MIB,
        Media::Mp4,
    ),
    (
        "Projects/日本語のプロジェクト/インタビュー.wav",
        24 * MIB,
        Media::Wav,
    ),
    (
        "Projects/日本語のプロジェクト/写真 ☀️.jpg",
        340 << 10,
        Media::Jpeg,
    ),
    ("Stills/café ☕.jpg", 220 << 10, Media::Jpeg),
    ("Stills/Sequence/frame_000001.dpx", 3 * MIB, Media::Dpx),
    ("Stills/Sequence/frame_000002.dpx", 3 * MIB, Media::Dpx),
    ("Stills/Sequence/frame_000003.dpx", 3 * MIB, Media::Dpx),
    ("Stills/Sequence/frame_000004.dpx", 3 * MIB, Media::Dpx),
    ("Audio/Ambience — rain.wav", 6 * MIB, Media::Wav),
    (
        "Notes/shot list.csv",
        0,
        Media::Text("scene,take,clip\n1,2,A001_C002\n1,3,A001_C003\n"),
    ),
    ("Notes/empty.txt", 0, Media::Text("")),
];

/// Runs the demo.
pub fn run(args: &crate::cli::DemoArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => default_dir()?,
    };
    prepare_dir(&dir)?;
    let media = dir.join("media");
    let backup = dir.join("backup");
    let catalog = dir.join("warren.sqlite");

    // A library made before is kept as the user left it: files copied in live in
    // its store, and only its catalog names them.
    let kept = catalog.exists();
    if !kept {
        build(&media, &backup, &catalog, args.quick)?;
    }
    let vfs = Vfs::open(VfsConfig::new(&catalog)).with_context(|| {
        format!(
            "opening the demo library in {} (delete that directory to start over)",
            dir.display()
        )
    })?;
    let program = program();
    let flag = format!("--catalog {}", shell_quote(&catalog.display().to_string()));
    let mut out = io::stdout().lock();
    if kept {
        writeln!(
            out,
            "Demo library in {}, as you left it (delete that directory to start over)",
            dir.display()
        )?;
    } else {
        writeln!(out, "Demo library in {}", dir.display())?;
    }
    writeln!(out, "  catalog: {}", catalog.display())?;
    writeln!(
        out,
        "  media:   {} (and one clip in {})",
        media.display(),
        backup.display()
    )?;
    writeln!(out)?;
    writeln!(out, "/")?;
    browse::write_tree(&vfs, NodeId::ROOT, "", &mut out)?;
    writeln!(out)?;
    match vfs.lookup_path(MOVED_CLIP) {
        Ok(clip) => {
            writeln!(out, "$ {program} resolve '/{MOVED_CLIP}' {flag}")?;
            browse::write_resolution(&vfs, clip.id, &mut out)?;
        }
        Err(VfsError::NotFound(_)) if kept => {
            writeln!(
                out,
                "(/{MOVED_CLIP}, the clip with a stale alias, is no longer in the library.)"
            )?;
        }
        Err(err) => return Err(err.into()),
    }
    writeln!(out)?;
    writeln!(out, "Next, try:")?;
    writeln!(out, "  {program} ls -l /Projects {flag}")?;
    writeln!(out, "  {program} cat /README.txt {flag}")?;
    writeln!(out, "  {program} stat '/Stills/café ☕.jpg' {flag}")?;
    if program != "markbase" {
        writeln!(
            out,
            "(markbase is not on your PATH; `cargo install --path markbase-cli` in the \
             repository puts it there)"
        )?;
    }
    out.flush()?;
    drop(out);
    if args.no_mount {
        return Ok(());
    }
    share_demo(vfs, &dir.join("mount"))
}

/// Generates the media, imports it into a new catalog at `catalog` and makes the
/// moved clip's first alias stale. The catalog takes its name only when complete, so
/// that an interrupted build is redone rather than kept.
fn build(media: &Path, backup: &Path, catalog: &Path, quick: bool) -> Result<()> {
    generate(media, backup, quick)?;
    let partial = catalog.with_extension("sqlite.partial");
    for suffix in ["", "-wal", "-shm"] {
        let mut path = partial.clone().into_os_string();
        path.push(suffix);
        remove_if_present(Path::new(&path))?;
    }
    import_with_progress(media, &partial, "/")?;
    import_with_progress(backup, &partial, "/")?;
    // The first drive loses the clip: its first alias is now stale.
    remove_if_present(&media.join(MOVED_CLIP))?;
    fs::rename(&partial, catalog)
        .with_context(|| format!("renaming {} to {}", partial.display(), catalog.display()))
}

/// The command that runs this program as typed in a shell: `markbase` when that is
/// what PATH finds, otherwise the absolute path of the running binary.
fn program() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "markbase".to_owned();
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("markbase"))
            .find(|candidate| candidate.is_file())
    });
    match on_path.and_then(|found| fs::canonicalize(found).ok()) {
        Some(found) if fs::canonicalize(&exe).is_ok_and(|exe| exe == found) => {
            "markbase".to_owned()
        }
        _ => shell_quote(&exe.display().to_string()),
    }
}

/// `text` as one word for a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Where the demo serves its library over WebDAV.
const DEMO_ADDRESS: &str = "127.0.0.1:4918";

/// Serves the demo library over WebDAV and mounts it on `mountpoint` (where this
/// machine can), in the foreground until Ctrl-C.
fn share_demo(vfs: Vfs, mountpoint: &Path) -> Result<()> {
    let vfs = Arc::new(vfs);
    let address = DEMO_ADDRESS.parse().expect("a valid address");
    let started = Background::start(Arc::clone(&vfs), address, Access::Anonymous, |server| {
        server
    })
    .with_context(|| format!("cannot listen on {address}"));
    let server = match started {
        Ok(server) => {
            println!(
                "\nServing it over WebDAV at http://{}/ (a browser shows its folders; Finder: \
                 Go > Connect to Server), to every user of this machine, who can change it \
                 there without a password.",
                server.address()
            );
            Some(server)
        }
        Err(err) => {
            println!("\nNot serving the library over WebDAV: {err:#}.");
            None
        }
    };
    let ways = crate::mount::Ways::auto();
    let plan = ways.plan();
    let shown = if plan.tries.is_empty() {
        println!("Not mounting the library: {}.", plan.passed_over());
        if server.is_some() {
            println!("Ctrl-C stops the server.");
            wait_for_stop_signal()?;
        }
        Ok(())
    } else {
        fs::create_dir_all(mountpoint)
            .with_context(|| format!("creating {}", mountpoint.display()))?;
        println!(
            "Mounting it on {}: open it in a file manager or a shell; Ctrl-C unmounts.",
            mountpoint.display()
        );
        crate::mount::mount_as(vfs, mountpoint, &ways)
    };
    if let Some(server) = server {
        server.stop();
    }
    shown
}

/// Blocks until SIGINT, SIGTERM or SIGHUP.
fn wait_for_stop_signal() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install signal handlers")?;
    signals.forever().next();
    Ok(())
}

fn default_dir() -> Result<PathBuf> {
    Ok(crate::data_dir::markbase_data_dir()
        .context("neither XDG_DATA_HOME nor HOME is set; pass --dir")?
        .join("demo"))
}

/// Creates `dir`, or checks that an existing one is an earlier demo's.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} is not empty and was not made by `markbase demo`; choose another --dir",
                dir.display()
            );
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join(MARKER), "made by markbase demo\n")
        .with_context(|| format!("writing the marker in {}", dir.display()))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes every library file that is not already there with the right size.
fn generate(media: &Path, backup: &Path, quick: bool) -> Result<()> {
    let mut plan: Vec<(PathBuf, u64, Media, u64)> = Vec::new();
    for (seed, &(path, size, content)) in (1..).zip(LIBRARY) {
        let size = match content {
            Media::Text(text) => text.len() as u64,
            _ if quick => size.min(QUICK_MAX),
            _ => size,
        };
        plan.push((media.join(path), size, content, seed));
        if path == MOVED_CLIP {
            plan.push((backup.join(path), size, content, seed));
        }
    }
    plan.retain(|(path, size, ..)| fs::metadata(path).map(|m| m.len() != *size).unwrap_or(true));
    let total: u64 = plan.iter().map(|(_, size, ..)| size).sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "generating media {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("the template is valid"),
    );
    for (path, size, content, seed) in &plan {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        write_media(path, *size, *content, *seed, &bar)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn write_media(
    path: &Path,
    size: u64,
    content: Media,
    seed: u64,
    bar: &ProgressBar,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(path)?);
    let (header, trailer): (Vec<u8>, &[u8]) = match content {
        Media::Text(text) => {
            out.write_all(text.as_bytes())?;
            bar.inc(size);
            return out.flush();
        }
        Media::QuickTime => (mp4_header(b"qt  ", size), b""),
        Media::Mp4 => (mp4_header(b"isom", size), b""),
        Media::Wav => (wav_header(size), b""),
        Media::Jpeg => (
            vec![
                0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
            ],
            &[0xFF, 0xD9],
        ),
        Media::Dpx => (b"SDPX\0\0\x20\0V2.0\0".to_vec(), b""),
    };
    let body = size.saturating_sub((header.len() + trailer.len()) as u64);
    let header_len = (header.len() as u64).min(size) as usize;
    out.write_all(&header[..header_len])?;
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = body;
    while left > 0 {
        let n = left.min(MIB) as usize;
        match content {
            Media::Wav => fill_tone(&mut chunk[..n], body - left),
            _ => fill_noise(&mut chunk[..n], &mut rng),
        }
        out.write_all(&chunk[..n])?;
        bar.inc(n as u64);
        left -= n as u64;
    }
    let written = header_len as u64 + body;
    out.write_all(&trailer[..(size - written) as usize])?;
    bar.inc(header_len as u64 + (size - written));
    out.flush()
}

/// An `ftyp` box followed by the header of an `mdat` box holding the rest.
fn mp4_header(brand: &[u8; 4], size: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(36);
    header.extend_from_slice(&20u32.to_be_bytes());
    header.extend_from_slice(b"ftyp");
    header.extend_from_slice(brand);
    header.extend_from_slice(&0x200u32.to_be_bytes());
    header.extend_from_slice(brand);
    header.extend_from_slice(&1u32.to_be_bytes());
    header.extend_from_slice(b"mdat");
    header.extend_from_slice(&size.saturating_sub(20).to_be_bytes());
    header
}

/// A 44-byte RIFF/WAVE header for 48 kHz 16-bit stereo PCM.
fn wav_header(size: u64) -> Vec<u8> {
    let data = u32::try_from(size.saturating_sub(44)).unwrap_or(u32::MAX);
    let mut header = Vec::with_capacity(44);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&data.saturating_add(36).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&48_000u32.to_le_bytes());
    header.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data.to_le_bytes());
    header
}

/// Pseudo-random bytes (xorshift64), standing in for compressed frames.
fn fill_noise(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// A 440 Hz tone, as 16-bit samples starting at byte `offset` of the PCM data.
fn fill_tone(buf: &mut [u8], offset: u64) {
    for (i, byte) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        let sample_index = at / 4;
        let phase = (sample_index as f64) * 440.0 * std::f64::consts::TAU / 48_000.0;
        let sample = (phase.sin() * 8_000.0) as i16;
        *byte = sample.to_le_bytes()[(at % 2) as usize];
    }
}
