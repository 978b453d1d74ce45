#!/usr/sbin/dtrace -s
/*
 * live-migration-times.d - migtrace's migration phase timings, live, on
 * illumos: the counterpart of propolis's script of the same name and of
 * `migtrace trace phases` on Linux.
 *
 * Usage: ./live-migration-times.d <pid>
 *
 * Each time a migration in the process ends, prints that side's phase
 * table and, on the source, the pages transferred. migtrace has no USDT
 * provider: its probes are plain Go functions (package
 * github.com/migtrace/migtrace/probes), traced with the pid provider. Go
 * passes arguments in registers (ABIInternal: rax, rbx, rcx, rdi, rsi, r8,
 * r9, r10, r11), so they are read from uregs[], not arg0..; sub-word
 * arguments (role, phase, bools) are masked to their low byte. D probe
 * descriptions cannot contain '/', so '?' stands for it in the package path.
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
	names[1] = "Sync";
	names[2] = "RamPushPrePause";
	names[3] = "Pause";
	names[4] = "RamPushPostPause";
	names[5] = "TimeData";
	names[6] = "DeviceState";
	names[7] = "RamPull";
	names[8] = "ServerState";
	names[9] = "Finish";
	printf("tracing live migration protocol times for pid %d...\n\n", $1);
}

/* RAMRegion(role uint8, pages, bytes uint64, paused bool) */
pid$1::github.com?migtrace?migtrace?probes.RAMRegion:entry
{
	this->role = (int)(uregs[R_RAX] & 0xff);
	this->paused = (uregs[R_RDI] & 0xff) != 0 ? 1 : 0;
	xfer_pages[this->role, this->paused] += uregs[R_RBX];
	xfer_bytes[this->role, this->paused] += uregs[R_RCX];
}

/* PhaseBegin(role, phase uint8, hrtime int64) */
pid$1::github.com?migtrace?migtrace?probes.PhaseBegin:entry
{
	start[(int)(uregs[R_RAX] & 0xff), (int)(uregs[R_RBX] & 0xff)] = (int64_t)uregs[R_RCX];
}

/* PhaseEnd(role, phase uint8, hrtime int64, failed bool) */
pid$1::github.com?migtrace?migtrace?probes.PhaseEnd:entry
{
	this->role = (int)(uregs[R_RAX] & 0xff);
	this->phase = (int)(uregs[R_RBX] & 0xff);
}

pid$1::github.com?migtrace?migtrace?probes.PhaseEnd:entry
/start[this->role, this->phase] != 0/
{
	delta[this->role, this->phase] = (int64_t)uregs[R_RCX] - start[this->role, this->phase];
}

pid$1::github.com?migtrace?migtrace?probes.PhaseEnd:entry
/start[this->role, this->phase] == 0/
{
	printf("WARNING: phase \"%s\" could not be measured\n", names[this->phase]);
}

/*
 * MigrationEnd(role uint8, idHi, idLo uint64, failed bool): print this
 * side's table and reset its state. D has no loops: one clause per phase,
 * in protocol order; clause-local variables carry across them.
 */
pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
{
	this->role = (int)(uregs[R_RAX] & 0xff);
	this->total = (int64_t)0;
	this->pre = (uint64_t)delta[this->role, 2];
	this->post = (uint64_t)delta[this->role, 4];
	printf("%-20s %30s\n", "PHASE", "TIME ELAPSED (usec)");
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 1] != 0/
{
	printf("%-20s %30d\n", "Sync", delta[this->role, 1] / 1000);
	this->total += delta[this->role, 1];
	delta[this->role, 1] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 2] != 0/
{
	printf("%-20s %30d\n", "RamPushPrePause", delta[this->role, 2] / 1000);
	this->total += delta[this->role, 2];
	delta[this->role, 2] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 3] != 0/
{
	printf("%-20s %30d\n", "Pause", delta[this->role, 3] / 1000);
	this->total += delta[this->role, 3];
	delta[this->role, 3] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 4] != 0/
{
	printf("%-20s %30d\n", "RamPushPostPause", delta[this->role, 4] / 1000);
	this->total += delta[this->role, 4];
	delta[this->role, 4] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 5] != 0/
{
	printf("%-20s %30d\n", "TimeData", delta[this->role, 5] / 1000);
	this->total += delta[this->role, 5];
	delta[this->role, 5] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 6] != 0/
{
	printf("%-20s %30d\n", "DeviceState", delta[this->role, 6] / 1000);
	this->total += delta[this->role, 6];
	delta[this->role, 6] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 7] != 0/
{
	printf("%-20s %30d\n", "RamPull", delta[this->role, 7] / 1000);
	this->total += delta[this->role, 7];
	delta[this->role, 7] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 8] != 0/
{
	printf("%-20s %30d\n", "ServerState", delta[this->role, 8] / 1000);
	this->total += delta[this->role, 8];
	delta[this->role, 8] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/delta[this->role, 9] != 0/
{
	printf("%-20s %30d\n", "Finish", delta[this->role, 9] / 1000);
	this->total += delta[this->role, 9];
	delta[this->role, 9] = 0;
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
{
	printf("%-20s %30d\n", "TOTAL", this->total / 1000);
	this->up = xfer_pages[this->role, 0];
	this->ub = xfer_bytes[this->role, 0];
	this->pp = xfer_pages[this->role, 1];
	this->pb = xfer_bytes[this->role, 1];
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/this->up + this->pp > 0/
{
	printf("\n");
	printf("%-25s %20d\n", "NPAGES XFERED (total)", this->up + this->pp);
	printf("%-25s %20d\n", "NBYTES XFERED (total)", this->ub + this->pb);
	printf("%-25s %20d\n", "NPAGES XFERED (unpaused)", this->up);
	printf("%-25s %20d\n", "NBYTES XFERED (unpaused)", this->ub);
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/this->up + this->pp > 0 && this->pre != 0 && this->ub != 0/
{
	printf("%-25s %20d\n", "KiB/SEC (unpaused)", this->ub * 1000000000 / this->pre / 1024);
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/this->up + this->pp > 0/
{
	printf("%-25s %20d\n", "NPAGES XFERED (paused)", this->pp);
	printf("%-25s %20d\n", "NBYTES XFERED (paused)", this->pb);
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
/this->up + this->pp > 0 && this->post != 0 && this->pb != 0/
{
	printf("%-25s %20d\n", "KiB/SEC (paused)", this->pb * 1000000000 / this->post / 1024);
}

pid$1::github.com?migtrace?migtrace?probes.MigrationEnd:entry
{
	printf("\n");
	xfer_pages[this->role, 0] = 0;
	xfer_pages[this->role, 1] = 0;
	xfer_bytes[this->role, 0] = 0;
	xfer_bytes[this->role, 1] = 0;
	start[this->role, 1] = 0;
	start[this->role, 2] = 0;
	start[this->role, 3] = 0;
	start[this->role, 4] = 0;
	start[this->role, 5] = 0;
	start[this->role, 6] = 0;
	start[this->role, 7] = 0;
	start[this->role, 8] = 0;
	start[this->role, 9] = 0;
}
