//! `cetrack-ai`: the ai domain service.

fn main() -> std::process::ExitCode {
    cetrack_domain_service::domain_main(cetrack_contract::Domain::Ai)
}
