//! Generates the `ladder.v1` code with protox (pure Rust, no `protoc`) and tonic-prost-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/ladder/v1/ladder.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile(["ladder/v1/ladder.proto"], ["proto"])?;
    // The encoded descriptors, for gRPC server reflection (grpcurl).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("ladder_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
