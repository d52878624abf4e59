//! What a hub keeps in its data directory besides its database (`store`) and its CA
//! (`tls`): the token of its live page, new at every start, and how files only their owner
//! may read are written.
//!
//! Imports nothing of the crate but the hex encoding of `auth`.

use std::fs;
use std::path::Path;

/// The page token's file in the hub's data directory.
pub const TOKEN_FILE: &str = "ui-token";

/// Writes a file only its owner may read (a private key): made with mode 0600, and set to
/// it if it existed.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Makes the token of a new run of the hub and writes it to `data_dir`.
pub(crate) fn new_token(data_dir: &Path) -> Result<String, String> {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = crate::auth::x509::hex(&bytes);
    let path = data_dir.join(TOKEN_FILE);
    write_private(&path, &token).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

/// The page's address with its token.
pub fn ui_url(host: &str, port: u16, token: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("https://{host}:{port}/ui/?token={token}")
}

/// The token of the hub that last ran in `data_dir`, if any.
pub fn read_token(data_dir: &Path) -> Option<String> {
    let token = std::fs::read_to_string(data_dir.join(TOKEN_FILE)).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_brackets_ipv6_hosts() {
        assert_eq!(
            ui_url("localhost", 443, "t"),
            "https://localhost:443/ui/?token=t"
        );
        assert_eq!(ui_url("::1", 8443, "t"), "https://[::1]:8443/ui/?token=t");
    }
}
