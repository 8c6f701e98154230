// The admin's user page. After a password reset the page is the answer to a POST; turn
// its history entry into a plain GET of the same page, so that reloading it shows the
// user again instead of resetting his password a second time.
if (document.getElementById("pp-temporary")) {
  history.replaceState(null, "", location.pathname);
}
