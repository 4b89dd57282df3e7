chown opendkim:opendkim /etc/dkimkeys/*.private
lab-service enable opendkim
