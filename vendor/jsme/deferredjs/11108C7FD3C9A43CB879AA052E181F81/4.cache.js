$wnd.jsme.runAsyncCallback4('x(734,623,sn);_.be=function(){this.a.Mc&&P2(this.a.Mc);this.a.Mc=new U2(1,this.a)};R(j_)(4);\n//@ sourceURL=4.js\n')
