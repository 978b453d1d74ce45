//go:build !linux

package sim

// adviseHugePages is Linux's transparent huge pages hint; elsewhere
// guest RAM keeps the default pages.
func adviseHugePages([]byte) {}
