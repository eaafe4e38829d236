//! The operator's terminal (issue #22): quiet by default, summaries instead of walls of
//! ids, exit codes a script can act on, completions and a man page. The binary runs with
//! stderr a pipe, as under a systemd timer or in a script.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::util::{BIN, DataDir, submission};

/// Runs the binary as an operator would: no `MUSUBI_LOG` (the harness's `cli_output` sets
/// one), so that the default levels are what is tested.
fn run(data: &DataDir, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env_remove("MUSUBI_LOG")
        .env_remove("NO_COLOR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run musubi")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Over a new data directory the store's migrations used to be logged at INFO, with
/// colour codes, into a pipe. Fails on main before #22: stderr held `INFO` lines and ESC.
#[test]
fn a_cli_command_is_quiet_and_plain_by_default() {
    let data = DataDir::new();
    let out = run(
        &data,
        &["member", "add", "Quiet Member", "--class", "class1"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes on a pipe: {stderr:?}"
    );
    assert!(!stderr.contains("INFO"), "INFO lines by default: {stderr}");

    // -v brings the INFO lines back, still without colour on a pipe or with NO_COLOR.
    let data = DataDir::new();
    let out = run(
        &data,
        &["-v", "member", "add", "Loud Member", "--class", "class1"],
        &[("NO_COLOR", "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("INFO"), "-v logs at INFO: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes: {stderr:?}");
}

fn write_files(data: &DataDir) -> (String, String) {
    let three = data.path().join("three.json");
    std::fs::write(
        &three,
        json!([
            submission("term one", "green", &[("domain", "one.term-test.example")]),
            submission(
                "term two",
                "green",
                &[
                    ("domain", "two.term-test.example"),
                    ("ipv4", "203.0.113.77")
                ]
            ),
            submission(
                "term three",
                "amber",
                &[("domain", "three.term-test.example")]
            ),
        ])
        .to_string(),
    )
    .unwrap();
    let one = data.path().join("one.json");
    std::fs::write(
        &one,
        submission(
            "term four",
            "green",
            &[("domain", "four.term-test.example")],
        )
        .to_string(),
    )
    .unwrap();
    (
        three.to_str().unwrap().to_string(),
        one.to_str().unwrap().to_string(),
    )
}

/// One summary line per file with counts and an id range, then a total; no id list unless
/// `-v`. Fails on main, which printed `path: stored, R-3` and no total.
#[test]
fn import_prints_one_summary_line_per_file_and_a_total() {
    let data = DataDir::new();
    data.add_member("Term Member", "class1", None);
    let (three, one) = write_files(&data);
    let out = run(&data, &["import", &three, &one, "--as", "Term Member"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{three}: 3 reports R-"))
            && lines[0].contains('…')
            && lines[0]
                .ends_with(", 4 indicators, 0 rejected; items: 3 kept, 0 normalised, 0 skipped"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{one}: 1 report R-"))
            && lines[1]
                .ends_with(", 1 indicator, 0 rejected; items: 1 kept, 0 normalised, 0 skipped"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("total: 4 reports from 2 files, 5 indicators, 0 rejected"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains("INFO"),
        "{stderr}"
    );

    // -v lists every id.
    let out = run(&data, &["import", &three, "--as", "Term Member", "-v"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let ids = stdout.lines().nth(1).expect("the id line");
    assert_eq!(ids.trim().split(", ").count(), 3, "{stdout}");
    assert!(
        ids.trim().split(", ").all(|i| i.starts_with("R-")),
        "{stdout}"
    );
}

/// `--json` is one object whose counts and ranges match what the store holds.
#[test]
fn import_json_counts_match_the_store() {
    let data = DataDir::new();
    data.add_member("Json Member", "class1", None);
    let (three, one) = write_files(&data);
    let out = run(
        &data,
        &["import", &three, &one, "--as", "Json Member", "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["total"]["files"], 2, "{v}");
    assert_eq!(v["total"]["files_rejected"], 0, "{v}");
    assert_eq!(v["total"]["reports"], 4, "{v}");
    assert_eq!(v["total"]["indicators"], 5, "{v}");
    assert_eq!(v["total"]["rejected"], 0, "{v}");
    let files = v["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], three.as_str(), "{v}");
    assert_eq!(files[0]["reports"], 3, "{v}");
    assert_eq!(files[1]["reports"], 1, "{v}");
    let mut listed = Vec::new();
    for f in files {
        assert!(f["errors"].as_array().unwrap().is_empty(), "{v}");
        assert!(f.get("ids").is_none(), "ids only with -v: {v}");
        for r in f["ranges"].as_array().unwrap() {
            let n = |s: &Value| s.as_str().unwrap()[2..].parse::<u64>().unwrap();
            listed.extend(n(&r["first"])..=n(&r["last"]));
        }
    }
    listed.sort();

    let campaigns: Value = serde_json::from_str(&data.cli(&["campaigns", "--json"])).unwrap();
    let mut stored: Vec<u64> = campaigns["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["reports"].as_array().unwrap().clone())
        .map(|r| r["id"].as_str().unwrap()[2..].parse().unwrap())
        .collect();
    stored.sort();
    assert_eq!(listed, stored, "the ranges are exactly the stored reports");
}

/// A file with one bad submission among good ones: exit code 3, the good ones stored (the
/// store holds them: counted through `campaigns --json`), the bad one named with its line,
/// the submission, the field and what was expected. Fails before the per-report import
/// (each file was stored all-or-nothing: the bad file's two good reports were lost).
#[test]
fn a_partly_bad_import_exits_3_and_names_the_line() {
    let data = DataDir::new();
    data.add_member("Bad Member", "class1", None);
    let (three, _) = write_files(&data);
    let bad = data.path().join("bad.json");
    let good = submission("fine", "green", &[("domain", "fine.term-test.example")]);
    std::fs::write(
        &bad,
        format!("[\n  {good},\n\n  {{\"title\": 7, \"tlp\": \"green\"}},\n  {good}\n]\n"),
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let out = run(
        &data,
        &["import", &three, bad, "--as", "Bad Member", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{bad}:4: [1].title: expected a string")),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        v["total"]["reports"], 5,
        "the good file and the bad file's two good submissions: {v}"
    );
    assert_eq!(v["files"][1]["reports"], 2, "{v}");
    assert_eq!(v["total"]["files_rejected"], 1, "{v}");
    assert_eq!(v["total"]["rejected"], 1, "only the bad submission: {v}");
    assert_eq!(v["files"][1]["items"]["kept"], 2, "{v}");
    assert_eq!(v["files"][1]["items"]["skipped"], 1, "{v}");
    assert_eq!(v["files"][1]["notes"][0]["at"], "[1]", "{v}");
    let campaigns: Value = serde_json::from_str(&data.cli(&["campaigns", "--json"])).unwrap();
    let stored: usize = campaigns["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reports"].as_array().unwrap().len())
        .sum();
    assert_eq!(stored, 5, "the store holds the good ones: {campaigns}");
    let errors = v["files"][1]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["path"], bad, "{v}");
    assert_eq!(errors[0]["line"], 4, "{v}");
    assert_eq!(errors[0]["submission"], 1, "{v}");
    assert_eq!(errors[0]["field"], "[1].title", "{v}");

    // Malformed JSON (named as native: `auto` would take it for free text): its line.
    let broken = data.path().join("broken.json");
    std::fs::write(&broken, "[\n  {\"title\": \"x\",\n  oops\n]").unwrap();
    let broken = broken.to_str().unwrap();
    let out = run(
        &data,
        &[
            "import",
            &three,
            broken,
            "--as",
            "Bad Member",
            "--format",
            "native",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{broken}:3:")), "{stderr}");

    // Nothing stored at all is a failure (1), not a partial one.
    let out = run(
        &data,
        &["import", broken, "--as", "Bad Member", "--format", "native"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Usage errors are clap's 2.
    let out = run(&data, &["import", "--as"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Completions for bash (which `bash -n` accepts), zsh and fish, and a roff man page, all
/// generated from the clap definitions and all knowing `import`. Fails on main (no such
/// commands).
#[test]
fn completions_and_man_page_mention_import() {
    let data = DataDir::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&data, &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains("import"), "{shell}: {script}");
        if shell == "bash" {
            let path = data.path().join("musubi.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output();
            if let Ok(check) = check {
                assert!(check.status.success(), "bash -n: {}", text(&check.stderr));
            }
        }
    }
    let out = run(&data, &["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("import"), "{page}");
}

/// `man -l` renders the generated page: sections, the commands, no roff left raw. Needs
/// man-db (`.ci/install`); a missing `man` fails the test rather than skipping it.
#[test]
fn the_man_page_renders_with_man() {
    let data = DataDir::new();
    let out = run(&data, &["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = data.path().join("musubi.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("man is installed (.ci/install adds man-db)");
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    // Without a terminal, man shows bold as overstrike (`N\bN`): read the letters.
    let mut shown = String::new();
    for c in text(&rendered.stdout).chars() {
        if c == '\u{8}' {
            shown.pop();
        } else {
            shown.push(c);
        }
    }
    for want in ["NAME", "SYNOPSIS", "musubi", "import", "completions"] {
        assert!(shown.contains(want), "{want} missing from:\n{shown}");
    }
    assert!(!shown.contains(".TH") && !shown.contains("\\fB"), "{shown}");
}

/// On a terminal, `import` draws a progress bar that moves per stored chunk of reports
/// (reports done of read, indicators/s, ETA) while one big file (1,000 reports, 100,000
/// indicators) is stored, then clears it and prints the summary. The terminal is a
/// pseudo-terminal from util-linux `script` (`.ci/install`). Fails before the per-report
/// progress (the bar counted files: 0/1 until the file was done, and no indicators).
#[test]
fn import_shows_a_progress_bar_on_a_terminal() {
    let data = DataDir::new();
    data.add_member("Pty Member", "class1", None);
    let reports: Vec<Value> = (0..1_000)
        .map(|r| {
            let values: Vec<String> = (0..100)
                .map(|i| format!("h{r}-{i}.pty-test.example"))
                .collect();
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("domain", v.as_str())).collect();
            submission(&format!("pty {r}"), "green", &pairs)
        })
        .collect();
    let big = data.path().join("big.json");
    std::fs::write(&big, Value::Array(reports).to_string()).unwrap();
    let command = format!(
        "{BIN} --data-dir {} import {} --as 'Pty Member'",
        data.path().display(),
        big.display()
    );
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "100")
        .output()
        .expect("script is installed (util-linux, .ci/install)");
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("ETA"), "no progress bar drawn:\n{screen:?}");
    assert!(
        screen.contains("/1,000 reports") && screen.contains("indicators ("),
        "the bar counts reports and indicators:\n{screen:?}"
    );
    assert!(
        screen.contains('\r') || screen.contains("\u{1b}["),
        "redrawn in place:\n{screen:?}"
    );
    assert!(
        screen.contains(&format!("{}: 1,000 reports R-", big.display()))
            && screen.contains("100,000 indicators"),
        "the summary follows:\n{screen:?}"
    );
}
