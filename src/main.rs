fn main() {
    std::process::exit(proxyha::cli::main());
}
