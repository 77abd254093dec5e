// Small conveniences only: every feature works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" in the queue.
  for (const all of document.querySelectorAll("[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of all.closest("form").querySelectorAll('input[name="ticket"]')) {
        box.checked = all.checked;
      }
    });
  }
  // Keyboard: "/" search, "r" reply, "n" next page (not while typing).
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    const pick = (key) => document.querySelector(`[data-key="${key}"]`);
    const element = event.key === "/" ? pick("/") : event.key === "r" ? pick("r") : event.key === "n" ? pick("n") : null;
    if (!element) return;
    event.preventDefault();
    if (element.tagName === "A") element.click(); else element.focus();
  });
});
