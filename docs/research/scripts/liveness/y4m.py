"""Write a 4:2:0 YUV4MPEG2 (y4m) file from RGB uint8 frames with numpy only (BT.601 full-range 'jpeg' chroma)."""
import numpy as np
def rgb_to_i420(rgb):
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # BT.601 limited range (what Chromium's I420 path assumes, video range 16-235)
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    h, w = y.shape
    # 2x2 average for 4:2:0 chroma
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    c = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return c(y), c(u), c(v)
def write_y4m(path, frames, fps=30):
    frames = list(frames)
    h, w = frames[0].shape[:2]
    assert w % 2 == 0 and h % 2 == 0, "4:2:0 needs even width and height"
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            assert f.shape == (h, w, 3) and f.dtype == np.uint8
            y, u, v = rgb_to_i420(f)
            fh.write(b"FRAME\n"); fh.write(y.tobytes()); fh.write(u.tobytes()); fh.write(v.tobytes())
