/* Who is signed in, from the page (no inline script under the CSP: app.html's #app-config). */

const config = document.getElementById("app-config").dataset;
export const APP = { isStaff: config.isStaff === "true", userId: Number(config.userId) };
