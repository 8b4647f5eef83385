//! Links `ladder-train` against libtorch so that CUDA registers where it exists,
//! and compiles the small C++ shim for what tch does not expose (bf16 autocast, TF32).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
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
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .file("csrc/torch_shim.cpp")
        .compile("ladder_torch_shim");

    let lib = libtorch.join("lib");
    // Keep libtorch_cuda.so in NEEDED even though no symbol of it is used directly:
    // otherwise the CUDA backend never registers (DESIGN.md, libtorch).
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,-L{},--no-as-needed,-ltorch_cuda,--as-needed", lib.display());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
