//! The `foldersync` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    foldersync::app::main()
}
