//! sluice: exactly-once replication of SaaS objects into warehouses and lakehouses.
