// Package chromiumtest loads pages in headless Chromium (Debian's
// chromium, which `make test-deps` installs) for tests that check what a
// person would see: a screenshot, the DOM after load, the console, and
// the laid-out boxes of an SVG's text. Chromium runs with every network
// path closed (a dead proxy, no DNS, no background services), so a page
// that needs the network shows it as errors.
//
// Screenshots are written to the test's temporary directory, and also to
// $MIGTRACE_SCREENSHOTS when that is set, for a person to look at.
package chromiumtest
