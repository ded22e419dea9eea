import AuditCLI

await RBACWatchMain.run()
