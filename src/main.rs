fn main() -> std::process::ExitCode {
    maildesk::cli::main()
}
