//! Progress bars for long CLI runs, drawn only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn progress_bar(total: u64, unit: &str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let template = if unit == "bytes" {
        "{bar:40} {bytes}/{total_bytes} ({eta} left)"
    } else {
        "{bar:40} {pos}/{len} messages ({eta} left)"
    };
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
