-- Incidents and their services; shared by SQLite and PostgreSQL.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    url TEXT,
    started TEXT,            -- ISO-8601 UTC, so text order is time order on both backends
    severity TEXT,           -- lower case
    source TEXT NOT NULL,    -- the file it was indexed from
    record TEXT NOT NULL,    -- JSON of the IncidentRecord: root cause, action items, extras
    indexed_at TEXT NOT NULL
);
CREATE INDEX incidents_started ON incidents (started);
CREATE INDEX incidents_severity ON incidents (severity);

CREATE TABLE incident_services (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    service TEXT NOT NULL,   -- lower case
    PRIMARY KEY (incident_id, service)
);
CREATE INDEX incident_services_service ON incident_services (service);
