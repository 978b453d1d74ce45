#!/usr/sbin/dtrace -s
/*
 * time-adjustments.d - the guest time-data adjustments of an incoming
 * migration, live, on illumos: the counterpart of propolis's script of the
 * same name and of `migtrace trace adjustments` on Linux.
 *
 * Usage: ./time-adjustments.d <pid>    (the destination process)
 *
 * When a migration ends on the destination, prints the guest frequency and
 * uptime and the three time-data stages - Migration (the source's data as
 * received), Propolis (migtrace's adjustment), Kernel (the VMM's) - with
 * the adjustment between each. The stages come from migtrace's TimeStage
 * probe, a Go function traced with the pid provider; its arguments are in
 * Go's registers: stage rax (low byte), guest frequency rbx, guest TSC rcx,
 * boot_hrtime rdi, stage duration rsi, guest uptime r8 (all in ns).
 */

#pragma D option quiet
#pragma D option defaultargs

BEGIN
/$1 == 0/
{
	printf("ERROR: migtrace pid required\n");
	exit(1);
}

BEGIN
{
	printf("tracing pid %d...\n\n", $1);
}

/*
 * TimeStage(stage uint8, guestFreq, guestTSC uint64, bootHrtime,
 *           durationNs, uptimeNs, migrateDeltaNs int64, negative bool)
 */
pid$1::github.com?migtrace?migtrace?probes.TimeStage:entry
{
	this->s = (int)(uregs[R_RAX] & 0xff);
	freq[this->s] = (uint64_t)uregs[R_RBX];
	tsc[this->s] = (uint64_t)uregs[R_RCX];
	bhrt[this->s] = (int64_t)uregs[R_RDI];
	dur[this->s] = (int64_t)uregs[R_RSI];
	uptime[this->s] = (int64_t)uregs[R_R8];
	seen[this->s] = 1;
}

/* MigrationEnd(role uint8, ...) on the destination (role 2). */
pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/(uregs[R_RAX] & 0xff) == 2 && seen[1] && seen[2] && seen[3]/
{
	printf("%15s %20s %20s\n", "GUEST FREQ (Hz)", "UPTIME (usec)", "TOTAL TIME (usec)");
	printf("%15lu %20lu %20lu\n", freq[1], uptime[2] / 1000, (dur[1] + dur[2] + dur[3]) / 1000);
	printf("\n");
	printf("%-10s %20s %20s %20s\n", "EVENT", "DURATION (usec)", "GUEST TSC", "BOOT HRTIME");
	printf("%-10s %20lu %20lu %20ld\n", "Migration", dur[1] / 1000, tsc[1], bhrt[1]);
	printf("%-30s  %20lu %20ld\n", "[adjustment]", tsc[2] - tsc[1], bhrt[2] - bhrt[1]);
	printf("%-10s %20lu %20lu %20ld\n", "Propolis", dur[2] / 1000, tsc[2], bhrt[2]);
	printf("%-30s  %20lu %20ld\n", "[adjustment]", tsc[3] - tsc[2], bhrt[3] - bhrt[2]);
	printf("%-10s %20d %20d %20d\n", "Kernel", dur[3] / 1000, tsc[3], bhrt[3]);
	printf("\n");
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/(uregs[R_RAX] & 0xff) == 2 && !(seen[1] && seen[2] && seen[3])/
{
	printf("WARNING: migration ended without all three time-data stages\n");
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/(uregs[R_RAX] & 0xff) == 2/
{
	seen[1] = 0;
	seen[2] = 0;
	seen[3] = 0;
}
