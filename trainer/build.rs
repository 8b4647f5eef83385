//! Links `ladder-train` against libtorch so that CUDA registers where it exists, and compiles the
//! C++ shim for what tch does not expose (bf16 autocast, TF32, fused AdamW, CUDA graphs, device
//! memory). The CUDA half of the shim is built where libtorch has its CUDA library and the CUDA
//! runtime headers are found (the PyPI wheel ships both: `nvidia/cu13/include`); elsewhere the
//! shim answers that it has no CUDA and the trainer runs eagerly.
use std::env;
use std::path::{Path, PathBuf};

/// The CUDA runtime's include folders and its lib folder: `$CUDA_HOME`, else the wheel's
/// `nvidia/cu*` (whose headers lack `crt/`, which the wheel's Triton ships).
fn cuda_runtime(libtorch: &Path) -> Option<(Vec<PathBuf>, PathBuf)> {
    let mut roots: Vec<PathBuf> = env::var_os("CUDA_HOME").map(PathBuf::from).into_iter().collect();
    // LIBTORCH is <site-packages>/torch; the wheel's CUDA runtime sits beside it.
    if let Some(site) = libtorch.parent()
        && let Ok(rd) = std::fs::read_dir(site.join("nvidia"))
    {
        let mut cu: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        cu.sort();
        roots.extend(cu.into_iter().rev());
    }
    let crt_dirs: Vec<PathBuf> =
        libtorch.parent().map(|site| vec![site.join("triton/backends/nvidia/include")]).unwrap_or_default();
    roots.into_iter().find_map(|r| {
        let (inc, lib) = (r.join("include"), r.join("lib"));
        let found = inc.join("cuda_runtime_api.h").exists()
            && (lib.join("libcudart.so").exists()
                || lib.join("libcudart.so.13").exists()
                || lib.join("libcudart.so.12").exists());
        if !found {
            return None;
        }
        let mut incs = vec![inc.clone()];
        if !inc.join("crt/host_config.h").exists() {
            incs.push(crt_dirs.iter().find(|d| d.join("crt/host_config.h").exists())?.clone());
        }
        Some((incs, lib))
    })
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=LADDER_NO_CUDA_SHIM");
    println!("cargo:rerun-if-changed=csrc/torch_shim.cpp");
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(libtorch) = env::var("LIBTORCH") else {
        panic!("LIBTORCH is not set: run scripts/install-libtorch.sh first");
    };
    let libtorch = PathBuf::from(libtorch);
    let include = libtorch.join("include");
    if !include.join("ATen/autocast_mode.h").exists() {
        panic!("libtorch headers not found under {}: run scripts/install-libtorch.sh", include.display());
    }
    let lib = libtorch.join("lib");
    let has_torch_cuda = lib.join("libtorch_cuda.so").exists() && lib.join("libc10_cuda.so").exists();
    let cuda =
        if has_torch_cuda && env::var_os("LADDER_NO_CUDA_SHIM").is_none() { cuda_runtime(&libtorch) } else { None };

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .file("csrc/torch_shim.cpp");
    if let Some((incs, _)) = &cuda {
        build.define("LADDER_CUDA", "1");
        // After libtorch's own headers, so the CUDA headers never shadow them.
        for inc in incs {
            build.flag("-idirafter").flag(inc.to_string_lossy().as_ref());
        }
    }
    build.compile("ladder_torch_shim");

    println!("cargo:rustc-link-search=native={}", lib.display());
    if let Some((_, cudalib)) = &cuda {
        // The shim calls into these directly (CUDA graphs, streams, events, memory info).
        println!("cargo:rustc-link-search=native={}", cudalib.display());
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
        let cudart = ["libcudart.so", "libcudart.so.13", "libcudart.so.12"]
            .into_iter()
            .find(|f| cudalib.join(f).exists())
            .unwrap_or("libcudart.so");
        println!("cargo:rustc-link-lib=dylib:+verbatim={cudart}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", cudalib.display());
    }
    // Keep libtorch_cuda.so in NEEDED even where no symbol of it is used directly:
    // otherwise the CUDA backend never registers (DESIGN.md, libtorch).
    if has_torch_cuda {
        println!("cargo:rustc-link-arg=-Wl,-L{},--no-as-needed,-ltorch_cuda,--as-needed", lib.display());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
