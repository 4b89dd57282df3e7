chown -R clamav:clamav /var/lib/clamav
lab-service enable clamav-daemon
lab-service enable clamav-milter
