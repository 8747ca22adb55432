import sys, time, base64, io, json, numpy as np
sys.path.insert(0, '/tmp/liveness')
from y4m import write_y4m
from PIL import Image
from playwright.sync_api import sync_playwright
R='/work/shared/data/lfw_dev/images/'
srcs=[R+'Tony_Blair/Tony_Blair_0001.jpg', R+'Hugo_Chavez/Hugo_Chavez_0001.jpg']
frames=[]
canv=[]
for s in srcs:
    im=np.asarray(Image.open(s).convert('RGB').resize((240,240)))
    c=np.full((240,320,3),128,np.uint8); c[:,40:280]=im; canv.append(c)
for i in range(60):  # 2 s at 30 fps: 1 s of each face
    frames.append(canv[0] if i<30 else canv[1])
write_y4m('/tmp/liveness/fake.y4m', frames, fps=30)
HTML = """<!doctype html><video id=v autoplay playsinline muted></video><canvas id=c width=320 height=240></canvas>
<script>
window.grab = async () => {
  const s = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}});
  const v = document.getElementById('v'); v.srcObject = s; await v.play();
  const c = document.getElementById('c'), g = c.getContext('2d');
  const out = []; const t0 = performance.now();
  for (let i = 0; i < 40; i++) {
    await new Promise(r => v.requestVideoFrameCallback ? v.requestVideoFrameCallback(() => r()) : setTimeout(r, 33));
    g.drawImage(v, 0, 0, 320, 240);
    if (i % 8 == 0) out.push({t: performance.now() - t0, w: v.videoWidth, h: v.videoHeight, png: c.toDataURL('image/png')});
  }
  return {label: s.getVideoTracks()[0].label, settings: s.getVideoTracks()[0].getSettings(), frames: out};
};
</script>"""
with sync_playwright() as p:
    b=p.chromium.launch(executable_path='/usr/bin/chromium', headless=True,
        args=['--no-sandbox','--use-fake-ui-for-media-stream','--use-fake-device-for-media-stream',
              '--use-file-for-fake-video-capture=/tmp/liveness/fake.y4m'])
    pg=b.new_page()
    pg.route('http://localhost/t.html', lambda r: r.fulfill(status=200, content_type='text/html', body=HTML))
    pg.goto('http://localhost/t.html')
    res=pg.evaluate('window.grab()')
    b.close()
print(res['label'], res['settings'])
for k,f in enumerate(res['frames']):
    im=np.asarray(Image.open(io.BytesIO(base64.b64decode(f['png'].split(',',1)[1]))).convert('RGB'))
    Image.fromarray(im).save(f'/tmp/liveness/chromium_frame{k}.png')
    d=[float(np.abs(im.astype(int)-c.astype(int)).mean()) for c in canv]
    print(k, round(f['t']), f['w'], f['h'], 'mean abs diff vs blair/chavez:', [round(x,1) for x in d])
