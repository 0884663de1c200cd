//! `cetrack-partnerships`: the partnerships domain service.

fn main() -> std::process::ExitCode {
    cetrack_shared::runtime::domain_main(cetrack_shared::Domain::Partnerships)
}
