package testbus

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStartGuardRestart(t *testing.T) {
	b, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	if err := Guard(); err == nil {
		t.Error("Guard with DBUS_SYSTEM_BUS_ADDRESS unset: got nil, want an error")
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
	if err := Guard(); err == nil {
		t.Error("Guard on the real socket: got nil, want an error")
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Address)
	if err := Guard(); err != nil {
		t.Errorf("Guard on %s: %v", b.Address, err)
	}
	if _, err := exec.LookPath("busctl"); err != nil {
		t.Skip("no busctl")
	}
	ping := func() string {
		out, err := exec.Command("busctl", "--address="+b.Address, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId").CombinedOutput()
		if err != nil {
			t.Fatalf("busctl GetId: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	first := ping()
	if err := b.Restart(0); err != nil {
		t.Fatal(err)
	}
	if second := ping(); second == first {
		t.Errorf("bus id after Restart: %s, want a new one", second)
	}
	b.Stop()
	if _, err := os.Stat(b.Socket); err == nil {
		t.Errorf("socket %s left after Stop", b.Socket)
	}
}
