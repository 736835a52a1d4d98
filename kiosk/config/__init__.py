"""The configuration: schema, YAML loading, environment checks. A leaf package: it imports nothing
else from kiosk (a test checks it), so every part, the fleet side included, can load a config
without loading the parts it configures."""

from kiosk.config.environment import environment_problems
from kiosk.config.loading import ConfigError, load_config, parse_config, parse_yaml
from kiosk.config.schema import (
    CameraConfig,
    ContentConfig,
    DetectorConfig,
    KioskConfig,
    MqttConfig,
    NoticeConfig,
    ServiceConfig,
    StoreConfig,
    TrackingConfig,
    VisionConfig,
    VisitsConfig,
    default,
)

__all__ = [
    "CameraConfig",
    "ConfigError",
    "ContentConfig",
    "DetectorConfig",
    "KioskConfig",
    "MqttConfig",
    "NoticeConfig",
    "ServiceConfig",
    "StoreConfig",
    "TrackingConfig",
    "VisionConfig",
    "VisitsConfig",
    "default",
    "environment_problems",
    "load_config",
    "parse_config",
    "parse_yaml",
]
