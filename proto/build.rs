//! Generates the `ladder.v1` code with protox (pure Rust, no `protoc`) and tonic-prost-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/ladder/v1/ladder.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile(["ladder/v1/ladder.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
