// Sets the theme before the page paints: the one picked with the theme button (saved), else the system's choice,
// followed live while nothing is saved. studio.css keys its colours on <html data-theme>.
"use strict";
(() => {
  const root = document.documentElement;
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => {
    const saved = localStorage.getItem("genfoundry.theme");
    root.dataset.theme = saved === "light" || saved === "dark" ? saved : system.matches ? "dark" : "light";
  };
  apply();
  system.addEventListener("change", apply);
})();
