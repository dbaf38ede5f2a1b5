// Applies the saved theme ("light" / "dark") before the page paints; without one the system's choice applies.
"use strict";
(() => {
  const saved = localStorage.getItem("genfoundry.theme");
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
})();
