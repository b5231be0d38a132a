"""What a restore carries over from the database it replaces, whatever the engine: the
maintenance-mode row, so that swapping a database in neither takes the site down nor brings
it back up behind the operator's back (see postgres.swap_in and sqlite.carry_maintenance)."""

MAINTENANCE_TABLE = "maintenance_maintenancestate"
MAINTENANCE_COLUMNS = (
    "is_down",
    "message",
    "retry_after",
    "secret_hash",
    "allowed_ips",
    "since",
    "changed_by",
)
