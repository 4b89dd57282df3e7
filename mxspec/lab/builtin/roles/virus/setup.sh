chown -R clamav:clamav /var/lib/clamav
# The init script refuses to start clamd without Debian's main/daily databases; the lab ships
# its own signatures instead (systemd hosts get the same through a unit drop-in).
sed -i 's/^  for db in main daily; do$/  for db in; do/' /etc/init.d/clamav-daemon
lab-service enable clamav-daemon
lab-service enable clamav-milter
# SysV only: a daemonizing clamav-milter's parent waits for its child to report ready, and
# during a parallel (startpar) boot that report is sometimes lost: the init script then never
# returns and the boot stops before sshd. Started with --background, the script returns at once;
# the milter is running when its socket answers (what the lab's readiness check waits for).
# (systemd hosts run the same script through systemd's SysV generator, with a start timeout;
# the hang has not been seen there, so they keep Debian's way.)
if [ ! -L /sbin/init ]; then
    sed -i 's|start-stop-daemon --start --oknodo --exec $DAEMON|start-stop-daemon --start --oknodo --background --exec $DAEMON|' /etc/init.d/clamav-milter
    grep -q -- '--background --exec $DAEMON' /etc/init.d/clamav-milter
fi
