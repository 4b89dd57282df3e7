postmap /etc/postfix/transport /etc/postfix/relay_recipients
newaliases
for service in inetutils-syslogd postfix spamd spamass-milter cron; do lab-service enable $service; done
