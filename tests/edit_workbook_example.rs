//! The main example's edit, run against the emulator, with the saved file checked on disk.

#[allow(dead_code)]
#[path = "../examples/edit_workbook.rs"]
mod edit_workbook;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_edit_lands_in_saved_file() {
    let folder = tempfile::tempdir().expect("a temporary folder");

    let (report, file) = edit_workbook::edit_on_emulator(folder.path())
        .await
        .expect("the example's edit succeeds");

    assert_eq!(
        report.before,
        serde_json::json!([[120, 14400.5], [95, 11875]]),
        "the sample's values before the edit"
    );
    assert_eq!(
        report.after,
        serde_json::json!([[130, 15600.5], [101, 12625]]),
        "the written values read back in the session"
    );
    assert_eq!(report.stats.open, 0, "no session is left open");
    assert_eq!(
        report.stats.closed_explicitly, 1,
        "the first session is closed by close()"
    );
    assert_eq!(
        report.stats.closed_on_drop, 1,
        "the dropped session is closed by the queue"
    );
    let saved = edit_workbook::read_saved(&file, "Sales", "C2:D3").expect("the saved file reads");
    assert_eq!(
        saved,
        [["130", "15600.5"], ["101", "12625"]],
        "the edit is in the file on disk"
    );
    let notes = edit_workbook::read_saved(&file, "Notes", "A2:A2").expect("the saved file reads");
    assert_eq!(
        notes[0][0], "Ünïcödé text stays as it is.",
        "untouched cells survive the save"
    );
}
