// The door page: posts each code without leaving the page (so the camera stays on), shows the
// answer, and keeps the checked-in count fresh. Without this script the form still works.
// Camera: the browser's BarcodeDetector where it reads QR codes, otherwise the vendored jsQR
// (static/vendor/jsqr/). Browsers only give the camera to HTTPS pages (and localhost).
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  if (!form || !window.fetch) { return; }
  var input = document.getElementById("id_code");
  var answer = document.getElementById("door-answer");
  var countBox = document.querySelector("[data-count-url]");
  var checkedIn = countBox.querySelector("[data-testid=checked-in]");
  var issued = countBox.querySelector("[data-testid=issued]");
  var ticketsWord = countBox.querySelector("[data-testid=tickets-word]");
  var busy = false;
  var ICONS = { valid: "✓", already_checked_in: "!" };

  function showCount(count) {
    if (!count) { return; }
    checkedIn.textContent = count.checked_in;
    issued.textContent = count.issued;
    ticketsWord.textContent = count.issued === 1 ? "ticket" : "tickets";
  }

  function showAnswer(result, headline, detail) {
    answer.className = "door-answer" + (result ? " door-answer-" + result : "");
    if (result) { answer.setAttribute("data-result", result); } else { answer.removeAttribute("data-result"); }
    answer.textContent = "";
    var head = document.createElement("p");
    head.className = "door-answer-headline";
    var icon = document.createElement("span");
    icon.className = "door-answer-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[result] || "✕";
    head.appendChild(icon);
    head.appendChild(document.createTextNode(" " + headline));
    answer.appendChild(head);
    if (detail) {
      var more = document.createElement("p");
      more.className = "door-answer-detail";
      more.textContent = detail;
      answer.appendChild(more);
    }
  }

  var recent = document.getElementById("door-recent");

  function addRecent(data, sent) {
    var empty = recent.querySelector("li.muted");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    var badge = document.createElement("span");
    badge.className = "badge door-badge-" + data.result;
    badge.textContent = data.label;
    item.appendChild(badge);
    var what = data.ticket_code || (sent.length > 24 ? sent.slice(0, 23) + "…" : sent);
    item.appendChild(document.createTextNode(" " + data.time + " · " + what + (data.member ? " · " + data.member : "")));
    recent.insertBefore(item, recent.firstChild);
    while (recent.children.length > 5) { recent.removeChild(recent.lastChild); }
  }

  function submitCode(code) {
    if (busy) { return Promise.resolve(); }
    busy = true;
    var body = new FormData(form);
    body.set("code", code);
    return fetch(form.action, {
      method: "POST",
      body: body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          // Signed out (the sign-in page came back) or a server error page.
          showAnswer("", "Nothing was checked in: reload the page (you may need to sign in again).", "");
          return;
        }
        return response.json().then(function (data) {
          if (!response.ok) {
            showAnswer("", data.error || "That did not work. Please try again.", "");
            return;
          }
          showAnswer(data.result, data.headline, data.detail);
          showCount(data.count);
          addRecent(data, code);
        });
      })
      .catch(function () {
        showAnswer("", "No connection: nothing was checked in.", "Check the signal and scan again.");
      })
      .then(function () {
        busy = false;
        input.value = "";
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = input.value.trim();
    if (!code) {
      showAnswer("", "Type or scan a ticket code first.", "");
      input.focus();
      return;
    }
    submitCode(code).then(function () { input.focus(); });
  });

  // The count also moves when another door scans.
  setInterval(function () {
    if (document.hidden) { return; }
    fetch(countBox.getAttribute("data-count-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(showCount)
      .catch(function () {});
  }, 5000);

  // --- Camera -------------------------------------------------------------------------------
  var cameraBlock = document.getElementById("door-camera");
  var toggle = document.getElementById("camera-toggle");
  var video = document.getElementById("camera-view");
  var status = document.getElementById("camera-status");
  cameraBlock.hidden = false;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    toggle.hidden = true;
    status.textContent = window.isSecureContext
      ? "This browser cannot use the camera here: type the code instead."
      : "The camera works only when this site is opened over https: type the code instead.";
    return;
  }
  var stream = null;
  var readFrame = null;
  var lastCode = "";
  var lastAt = 0;
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function makeReader() {
    var native = window.BarcodeDetector && window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats() : Promise.resolve([]);
    return native.then(function (formats) {
      if (formats.indexOf("qr_code") !== -1) {
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return function () {
          return detector.detect(video).then(function (codes) { return codes.length ? codes[0].rawValue : ""; });
        };
      }
      return loadScript(form.getAttribute("data-vendor-reader")).then(function () {
        return function () {
          var width = video.videoWidth, height = video.videoHeight;
          if (!width || !height) { return Promise.resolve(""); }
          canvas.width = width;
          canvas.height = height;
          context.drawImage(video, 0, 0, width, height);
          var found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height, { inversionAttempts: "dontInvert" });
          return Promise.resolve(found ? found.data : "");
        };
      });
    });
  }

  function tick() {
    if (!stream) { return; }
    readFrame().then(function (code) {
      var now = Date.now();
      // The same QR code stays in view for a while: read it once, not once a frame.
      if (code && !(code === lastCode && now - lastAt < 4000)) {
        lastCode = code;
        lastAt = now;
        return submitCode(code);
      }
    }).catch(function () {}).then(function () {
      if (stream) { setTimeout(tick, 200); }
    });
  }

  function stop() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.hidden = true;
    toggle.textContent = "Scan with the camera";
    toggle.setAttribute("aria-pressed", "false");
    status.textContent = "";
  }

  toggle.addEventListener("click", function () {
    if (stream) { stop(); return; }
    status.textContent = "Starting the camera…";
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        return video.play();
      })
      .then(function () { return readFrame || makeReader(); })
      .then(function (reader) {
        readFrame = reader;
        toggle.textContent = "Stop the camera";
        toggle.setAttribute("aria-pressed", "true");
        status.textContent = "Point the camera at the ticket's QR code.";
        tick();
      })
      .catch(function () {
        stop();
        status.textContent = "The camera is not available here (it needs permission and a secure https page). Type the code instead.";
      });
  });
})();
