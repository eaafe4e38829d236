//! The systemd unit is valid: `systemd-analyze verify` prints nothing for it (unknown keys
//! only print warnings and still exit 0, so any output is a failure).

use std::process::Command;

#[test]
fn unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/musubi.service"
    ))
    .unwrap();
    for key in [
        "Type=notify",
        "ExecReload=",
        "StateDirectory=",
        "ConfigurationDirectory=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(key), "the unit lacks {key:?}");
    }
    // Verify a copy whose ExecStart points at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("musubi.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/musubi", env!("CARGO_BIN_EXE_musubi")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze not found: run ./.ci/install (it installs Debian's systemd)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "systemd-analyze verify: {printed}"
    );
}
