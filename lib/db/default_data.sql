-- OAR's default data: schema version and the three standard queues.
INSERT INTO schema (version, name)
  SELECT '3.0.0', '' WHERE NOT EXISTS (SELECT 1 FROM schema);
INSERT INTO queues (queue_name, priority, scheduler_policy) VALUES
  ('admin', 10, 'kamelot'),
  ('default', 2, 'kamelot'),
  ('besteffort', 0, 'kamelot')
ON CONFLICT (queue_name) DO NOTHING;
