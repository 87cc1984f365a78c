fn main() {
    let code = hab::cli::main();
    std::process::exit(code);
}
