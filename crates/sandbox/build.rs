//! Compiles the Pub/Sub API's contract (`proto/pubsub_api.proto`) into the sandbox's gRPC
//! server code. protox parses the file, so no `protoc` binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=proto/pubsub_api.proto");
    let descriptors = protox::compile(["proto/pubsub_api.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(false).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
