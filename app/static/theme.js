// Set the colour mode before first paint, so a dark-mode wall screen never flashes white.
// A file rather than an inline script: the Content-Security-Policy allows only this site's
// scripts and the hashes of Dash's own inline ones.
document.documentElement.setAttribute(
  "data-bs-theme", localStorage.getItem("p2pdash-theme") || "light");
