"""The studio: the web app served at `/` by the same server as the API.

Pages are rendered on the server (Jinja2) as shells: layout, navigation, forms and their labels. Everything a user
owns is read and changed by the browser through `/v1` with the user's API key in a header (`static/studio/api.js`),
so the studio has no path around the API's auth, ownership, limits or validation. Behaviour is Alpine.js (its CSP
build: no eval), charts are uPlot; both are vendored from npm at pinned versions (`static/vendor/VENDOR.md`).
"""
