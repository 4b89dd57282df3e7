# Submission on 587: STARTTLS first, then AUTH; not chrooted so smtpd can read /etc/sasldb2.
postconf -M submission/inet="submission inet n - n - - smtpd"
postconf -P "submission/inet/syslog_name=postfix/submission" \
    "submission/inet/smtpd_tls_security_level=encrypt" \
    "submission/inet/smtpd_sasl_auth_enable=yes" \
    "submission/inet/smtpd_tls_auth_only=yes" \
    "submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject"
echo '{{ submission_password }}' | saslpasswd2 -p -c -f /etc/sasldb2 -u {{ lab_domain }} {{ submission_user }}
chown root:sasl /etc/sasldb2 && chmod 640 /etc/sasldb2
adduser postfix sasl >/dev/null
newaliases
lab-service enable postfix
