//! Fetches the page's chart library, uPlot, from the npm registry at the version and sha512
//! integrity `web/uplot.lock` pins, and unpacks the two files the page embeds into OUT_DIR. The
//! tarball is cached under `$LADDER_CACHE` (default `~/.cache/ladder`)/npm, so the network is
//! needed once; the page then loads nothing from other hosts.
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha512};

const FILES: [&str; 2] = ["uPlot.iife.min.js", "uPlot.min.css"];

fn fail(msg: String) -> ! {
    panic!("fetching the web page's uPlot: {msg}")
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("LADDER_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
        xdg.unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")).join("ladder")
    });
    base.join("npm")
}

fn verified(path: &Path, integrity: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    let want = integrity.strip_prefix("sha512-").unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes)) == want
}

fn main() {
    let lock_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/uplot.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_else(|e| fail(format!("{}: {e}", lock_path.display())));
    let field = |k: &str| {
        lock.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
            .unwrap_or_else(|| fail(format!("{} has no {k}=", lock_path.display())))
            .to_string()
    };
    let (version, integrity) = (field("version"), field("integrity"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("uplot");
    let stamp = out.join(".version");
    if std::fs::read_to_string(&stamp).is_ok_and(|v| v == version) && FILES.iter().all(|f| out.join(f).is_file()) {
        return;
    }
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| fail(format!("creating {}: {e}", cache.display())));
    let tgz = cache.join(format!("uplot-{version}.tgz"));
    if !verified(&tgz, &integrity) {
        let status = std::process::Command::new("npm")
            .args(["pack", &format!("uplot@{version}"), "--silent", "--pack-destination"])
            .arg(&cache)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| fail(format!("running npm (install Node.js and npm): {e}")));
        if !status.success() {
            fail(format!("`npm pack uplot@{version}` failed ({status})"));
        }
        if !verified(&tgz, &integrity) {
            let _ = std::fs::remove_file(&tgz);
            fail(format!("{} does not match the pinned integrity {integrity}", tgz.display()));
        }
    }
    std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(format!("creating {}: {e}", out.display())));
    let file = std::fs::File::open(&tgz).unwrap_or_else(|e| fail(format!("{}: {e}", tgz.display())));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = 0;
    for entry in archive.entries().unwrap_or_else(|e| fail(format!("reading {}: {e}", tgz.display()))) {
        let mut entry = entry.unwrap_or_else(|e| fail(format!("reading {}: {e}", tgz.display())));
        let path = entry.path().map(|p| p.to_path_buf()).unwrap_or_default();
        let Some(name) = FILES.iter().find(|f| path == Path::new("package/dist").join(f)) else { continue };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap_or_else(|e| fail(format!("unpacking {name}: {e}")));
        std::fs::write(out.join(name), bytes).unwrap_or_else(|e| fail(format!("writing {name}: {e}")));
        found += 1;
    }
    if found != FILES.len() {
        fail(format!("{} lacks package/dist/{{{}}}", tgz.display(), FILES.join(",")));
    }
    std::fs::write(&stamp, &version).unwrap_or_else(|e| fail(format!("writing {}: {e}", stamp.display())));
}
