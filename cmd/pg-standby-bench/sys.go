package main

import "syscall"

func sysProcAttr(p *primary) *syscall.SysProcAttr { return &syscall.SysProcAttr{Credential: p.cred} }
