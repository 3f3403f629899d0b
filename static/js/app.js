// Ctrl/Cmd+Enter in the studio form submits it (through htmx when it is loaded).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const form = event.target.closest && event.target.closest("#generate-form");
  if (!form) return;
  event.preventDefault();
  form.requestSubmit();
});
