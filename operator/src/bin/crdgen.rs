//! Writes `crds/*.yaml` from the Rust types. Run `cargo run -p operator --bin crdgen` from the
//! workspace root (or pass `--out DIR`) after changing anything in `operator/src/crd`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate the Salve CRD manifests")]
struct Args {
    /// Directory to write the YAML files into.
    #[arg(long, env = "SALVE_CRD_DIR", default_value = "crds")]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    for (file, yaml) in operator::crd::generated_crds()? {
        let path = args.out.join(file);
        std::fs::write(&path, yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
