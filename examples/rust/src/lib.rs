//! Shared by the examples: reading the environment.

/// An environment variable, or a clear error.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

/// An optional environment variable.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The PEM of `IOTHUB_CA_FILE`, when set (a local hub's CA).
pub fn ca() -> Result<Option<Vec<u8>>, String> {
    env_opt("IOTHUB_CA_FILE")
        .map(|p| std::fs::read(&p).map_err(|e| format!("reading {p}: {e}")))
        .transpose()
}

/// A port from the environment, for a hub not on IoT Hub's ports.
pub fn port(name: &str) -> Result<Option<u16>, String> {
    env_opt(name)
        .map(|p| p.parse().map_err(|_| format!("{name} is not a port")))
        .transpose()
}
