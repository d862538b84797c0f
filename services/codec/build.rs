//! Generates the prost types of the frame messages from the contract
//! (proto/framevault/v1) at build time; nothing generated is committed.
//! protox compiles the .proto files, so no protoc binary is needed.

use std::env;
use std::path::PathBuf;

const PROTO_FILES: [&str; 2] = ["framevault/v1/frame.proto", "framevault/v1/metadata.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The repository's proto/ by default; FRAMEVAULT_PROTO_DIR for builds
    // that copy the crate elsewhere (the container image).
    let root = match env::var_os("FRAMEVAULT_PROTO_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto"),
    };
    println!("cargo:rerun-if-env-changed=FRAMEVAULT_PROTO_DIR");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(PROTO_FILES, [&root])?;
    let mut config = prost_build::Config::new();
    // Metadata maps in key order: documents and etags do not depend on the
    // order of a map on the wire.
    config.btree_map(["."]);
    config.compile_fds(descriptors)?;
    Ok(())
}
