/* Draw every plot of the page from the JSON beside it, with the vendored plotly.js. */
(function () {
  "use strict";
  var config = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"],
  };
  var font = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 };
  document.querySelectorAll(".plot-area").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
    var layout = Object.assign({ font: font, paper_bgcolor: "#ffffff" }, spec.layout);
    window.Plotly.newPlot(el, spec.data, layout, config).then(function () {
      el.setAttribute("data-rendered", String(spec.data.length));
    });
  });
})();
