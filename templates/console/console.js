// The console's only script, a file so the pages' CSP allows no inline
// code. Every page works without it; it adds what HTML alone cannot:
// times shown in the viewer's own time zone, and copy buttons.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // <time datetime="…"> holds the instant; its text is UTC until here.
  const format = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
  for (const time of document.querySelectorAll("time[datetime]")) {
    const at = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) {
      time.title = time.textContent;
      time.textContent = format.format(at);
    }
  }
  // <button data-copy="id"> copies the value (or text) of element #id.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = "value" in source ? source.value : source.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        if ("select" in source) source.select();
        button.textContent = "Press Ctrl+C to copy";
      }
    });
  }
});
