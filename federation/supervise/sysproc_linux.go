package supervise

import "syscall"

// sysProcAttr makes the kernel send SIGTERM to a child whose supervisor died, so no
// orphaned eventd keeps the group's port.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
