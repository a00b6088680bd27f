BEGIN TRANSACTION;
CREATE TABLE discovered (
	mac VARCHAR(17) NOT NULL, 
	report TEXT NOT NULL, 
	source VARCHAR(64) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	reports INTEGER NOT NULL, 
	enrolled_as VARCHAR(63), 
	PRIMARY KEY (mac)
);
INSERT INTO "discovered" VALUES('52:54:00:aa:bb:cc','{"serial": "X1"}','discovery','2026-12-03 15:11:31.543461','2026-12-03 15:11:31.543461',1,NULL);
CREATE TABLE events (
	id INTEGER NOT NULL, 
	node VARCHAR(63) NOT NULL, 
	at DATETIME NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	event VARCHAR(32), 
	from_state VARCHAR(32), 
	to_state VARCHAR(32), 
	message TEXT NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(node) REFERENCES nodes (name)
);
INSERT INTO "events" VALUES(1,'ctl1','2026-12-03 15:11:31.347912','transition','enroll',NULL,'enrolled','enrolled','main');
INSERT INTO "events" VALUES(2,'ctl1','2026-12-03 15:11:31.395565','transition','manage','enrolled','ready','','');
INSERT INTO "events" VALUES(3,'ctl1','2026-12-03 15:11:31.424580','transition','provision','ready','provisioning','','');
INSERT INTO "events" VALUES(4,'ctl1','2026-12-03 15:11:31.461453','power','cycle',NULL,NULL,'power cycled','');
INSERT INTO "events" VALUES(5,'cmp1','2026-12-03 15:11:31.522891','transition','enroll',NULL,'enrolled','enrolled','');
CREATE TABLE nodes (
	name VARCHAR(63) NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	reason TEXT, 
	step VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	state_since DATETIME NOT NULL, 
	build_mode BOOLEAN NOT NULL, 
	deploy_id VARCHAR(32), 
	deploy_started_at DATETIME, 
	PRIMARY KEY (name)
);
INSERT INTO "nodes" VALUES('ctl1','provisioning',NULL,'dns','2026-12-03 15:11:31.347912','2026-12-03 15:11:31.424580','2026-12-03 15:11:31.424580',0,NULL,NULL);
INSERT INTO "nodes" VALUES('cmp1','enrolled',NULL,NULL,'2026-12-03 15:11:31.522891','2026-12-03 15:11:31.522891','2026-12-03 15:11:31.522891',0,NULL,NULL);
CREATE TABLE reservations (
	node VARCHAR(63) NOT NULL, 
	token VARCHAR(36) NOT NULL, 
	owner VARCHAR(128) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	operation VARCHAR(64) NOT NULL, 
	acquired_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (node), 
	FOREIGN KEY(node) REFERENCES nodes (name)
);
INSERT INTO "reservations" VALUES('ctl1','22cf3c99-5adf-4d7f-9406-4c61ab9102a6','daemon','vm',25423,'provision','2026-12-03 15:11:31.483030','2026-12-03 15:41:31.483030');
CREATE INDEX ix_events_node ON events (node);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
COMMIT;
